"""The catalog bounded context: catalog import, feed building and publishing."""
