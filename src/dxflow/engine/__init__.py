"""The engine daemon: REST API with RSA challenge-response auth on every managed host."""
