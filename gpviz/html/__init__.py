"""HTML: escaping and Markup, the page skeleton, assets (the one rows2prose importer), encoding, figures."""
