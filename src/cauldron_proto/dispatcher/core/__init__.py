"""The dispatcher's I/O-free core: what the threaded and the asyncio dispatchers share.

- :mod:`.keywords`: the keywords and their values; a change of value returns the broadcast
  to send (no lock, no socket: the layers send it).
- :mod:`.registration`: the registration state machine (``welcome``, ``ready``, heartbeats,
  registering again when the broker goes silent), frames and a time in, frames out.
- :mod:`.handlers`: the answer to each keyword request (``update``, ``modify``, ``identify``,
  ``enumerate``, ``units``), from the keyword table.
- :mod:`.steps`: a keyword handler's steps, run to completion in a worker thread or awaited.
"""
