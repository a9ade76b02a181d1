def cmd_sweep(o): raise NotImplementedError
cmd_status = cmd_frontier = cmd_sweep
