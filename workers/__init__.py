"""The Ray side of the service: dispatcher, supernet holder, evaluator actors, job runners."""
