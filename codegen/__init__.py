"""Generator: turns spec/protocol.yaml into codecs, golden fixtures and docs.

Run ``python -m codegen`` from the repository root to regenerate, ``python -m codegen
--check`` to verify the committed files match the spec.
"""
