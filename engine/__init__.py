"""The engine: what turns recipes and run folders into trained models and back."""
