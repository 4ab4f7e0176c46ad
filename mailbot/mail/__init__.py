"""Mail in and out: parsing, classification, composition."""
