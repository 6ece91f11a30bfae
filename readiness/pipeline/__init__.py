"""The jobs' logic: each function wires extract -> transform -> load for one stage and returns counts."""
