"""Quality: sampling, scoring with LLM-as-judge evaluators, and the statistics that compare arms."""
