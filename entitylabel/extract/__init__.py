"""Stage 3: captions -> noun-phrase entities, denoised against a vocabulary -> multi-label pseudo-labels."""
