"""Engines: pure functions over files, data frames and models, imported only by workers."""
