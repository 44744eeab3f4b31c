"""Generator: turns spec/protocol.yaml into data: the protocol tables, the golden fixtures and
the protocol reference page (the envelope codec, the payload codecs and the message kinds,
written by hand, read the tables).

Run ``python -m codegen`` from the repository root to regenerate, ``python -m codegen
--check`` to verify the committed files match the spec.
"""
