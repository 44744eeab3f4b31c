"""Fuzzing the codec and the routing core: seeds, mutations, programs and checked drivers.

- :mod:`fuzz.seeds`: a valid message of every kind, and the mutations applied to them.
- :mod:`fuzz.codec_checks`: what must hold for any frame list given to the codec.
- :mod:`fuzz.core_driver`: plays a *program* (a list of small actions) against the
  routing core with a fake clock and checks, after every step, the core's invariants.
- :mod:`fuzz.programs`: programs from bytes (for atheris and hypothesis) or at random.

Entry points (atheris, coverage-guided; a random-mutation fallback without it), each
runnable for a set time: ``python fuzz/fuzz_core.py -max_total_time=60`` and
``python fuzz/fuzz_codec.py -max_total_time=60``. The tests (``tests/test_fuzz_*.py``)
run the same checks under hypothesis.
"""
