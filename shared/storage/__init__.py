"""Blob storage: immutable, content-addressed files."""
