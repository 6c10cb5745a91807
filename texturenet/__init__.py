"""texturenet: feed-forward texture synthesis and stylisation (Ulyanov et al., Texture Networks, ICML 2016)."""

__version__ = "0.1.0"
