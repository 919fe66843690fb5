"""Model-pack manifests, installed as the data package verifier.manifests."""
