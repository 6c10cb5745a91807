"""Training a generator: the loop, the photo data, torchrun, the run's files and monitors."""
