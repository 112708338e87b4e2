"""Lifeboat's local AWS: the pinned moto server with a realism layer (see ../launcher.py
for what it changes and why)."""
