"""Arena: a fast top-down space shooter for a LAN party (`python -m demos.arena`)."""
