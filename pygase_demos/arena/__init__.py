"""Arena: a fast top-down space shooter for a LAN party (`pygase-demo arena`)."""
