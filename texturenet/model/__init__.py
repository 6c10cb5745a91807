"""The generators and what a trained one is: networks, noise, the fused inference body, tiles, export, checkpoints."""
