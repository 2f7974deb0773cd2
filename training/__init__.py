"""What only training needs: recipes, data sets, architectures, fitting, evaluation, export and import.

The server never imports this package (tests/unit/test_layering.py): it serves what training stored in
the BentoML model store, through ``models/`` alone. TensorFlow is imported here, where a model is made.
"""
