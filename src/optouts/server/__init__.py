"""``optouts serve``: the always-on opt-out service (``pip install 'optouts[server]'``)."""
