"""Cases of the interpreter kernel tests (no triton import: shared by the test and its subprocess)."""
import torch

# name: (shape, gmp_filter, dtype, scale, shift, taps kind, tiles)
CASES = {
    "paper_odd": ((2, 13, 9, 11), "paper", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "2d_odd": ((1, 21, 7, 5), "2d", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "none": ((2, 6, 6, 9), "none", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "paper_wide": ((2, 19, 5, 36), "paper", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "paper_1x1": ((2, 5, 1, 1), "paper", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "paper_k3_random_taps": ((1, 10, 11, 6), "paper", torch.float32, 1.0, 0.0, "random3", "small"),
    "2d_k7": ((1, 7, 12, 13), "2d", torch.float32, 1.0, 0.0, "gauss7", "small"),
    "large_magnitude": ((2, 11, 9, 10), "paper", torch.float32, 300.0, 1e4, "gauss5", "small"),
    "large_logit_gaps": ((1, 9, 6, 7), "2d", torch.float32, 1e3, 0.0, "gauss5", "small"),
    "fp16": ((2, 12, 7, 9), "paper", torch.float16, 3.0, 0.0, "gauss5", "small"),
    "fp16_large": ((1, 8, 5, 6), "2d", torch.float16, 2e3, 0.0, "gauss5", "small"),
    "default_tiles": ((1, 20, 9, 70), "paper", torch.float32, 1.0, 0.0, "gauss5", "default"),
}
