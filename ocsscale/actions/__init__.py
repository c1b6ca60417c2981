"""Actions: the steps of a playbook, each read -> diff -> apply (-> undo) -> verify."""
