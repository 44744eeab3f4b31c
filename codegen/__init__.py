"""Generator: turns spec/protocol.yaml into protocol tables, payload codecs, message kinds,
golden fixtures and docs (the envelope codec, written by hand, reads the tables).

Run ``python -m codegen`` from the repository root to regenerate, ``python -m codegen
--check`` to verify the committed files match the spec.
"""
