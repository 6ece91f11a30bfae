"""Provincial ICT-readiness reporting platform."""
