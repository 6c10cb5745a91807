"""The servers: the browser GUI and the offline Visdom server."""
