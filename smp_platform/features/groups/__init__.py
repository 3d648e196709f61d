"""The built-in feature groups, one file each; registered by name in
:data:`smp_platform.features.registry.BUILTIN_GROUPS`, like a user's own."""
