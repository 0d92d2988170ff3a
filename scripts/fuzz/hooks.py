# Loaded by schemathesis (SCHEMATHESIS_HOOKS=hooks). Works around a CPython 3.11.7 bug:
# `ast.parse` of a large module fails with "AST constructor recursion depth mismatch" when it
# runs deep in the stack. Hypothesis parses source only to describe a lambda in a strategy's
# repr, so when that parse fails the description falls back to a generic one.
from hypothesis.internal import lambda_sources

_describe = lambda_sources.lambda_description


def _describe_or_fall_back(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources.lambda_description = _describe_or_fall_back
