"""Analysis: prior pull and its verdicts, when to judge, and model factories with other priors."""
