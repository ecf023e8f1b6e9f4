"""Column names shared by every frame gpviz makes (parameters, traces, sweeps, prior pulls).

Each name is defined here once; frames join on them (``i_model`` is the batch
member in every frame, ``i_timestep`` the step of a trace, ``i_config`` the
configuration band of a sweep view).
"""

I_MODEL = "i_model"          # batch member (fold, MCMC sample, output, sub-model of a list)
I_TIMESTEP = "i_timestep"    # one optimizer step of a trace, monotonic over attempts
I_CONFIG = "i_config"        # one configuration (band) of a stacked view
I_REPEAT = "i_repeat"        # one random subset of a sweep at one size
I_ATTEMPT = "i_attempt"      # BoTorch's fit attempt (0 = first, 1 = first retry, ...)
SIZE = "size"                # training points of a sweep cell
STEP = "step"                # BoTorch's step count within an attempt (restarts at 1)
LOSS = "loss"                # negative MLL of a member
ACTIVE = "active"            # whether the member was still being optimized at that step
ELAPSED = "elapsed"          # seconds since tracing began

#: Index columns a page reads besides the parameter keys.
INDEX_COLUMNS = (I_MODEL, I_CONFIG, I_TIMESTEP)
#: The bookkeeping columns of a trace's frames, before the parameter keys.
TRACE_COLUMNS = (I_TIMESTEP, I_ATTEMPT, STEP, I_MODEL, LOSS, ACTIVE, ELAPSED)
