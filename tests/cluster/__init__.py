"""Tests on the cluster profile's engines; a package, so that its package-scoped cluster stops after its last test."""
