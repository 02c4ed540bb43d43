"""Village cooperatives (合作社) and their members."""
