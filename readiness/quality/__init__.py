"""The quality gate: Great Expectations suites, the gate policy, Data Docs."""
