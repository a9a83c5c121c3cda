"""softgrad: softmax and cross-entropy, with their gradients."""
