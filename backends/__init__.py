"""Built-in ptdcore backends, each registered through the ``ptdcore`` entry-point group."""
