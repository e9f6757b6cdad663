"""Demo data: the documented example org, synthetic orgs at any size, loaded with COPY."""
