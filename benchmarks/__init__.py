"""Side-by-side benchmarks of keras_transformer against KerasHub."""
