"""The district domain: importing a bundle and reading the district back."""
