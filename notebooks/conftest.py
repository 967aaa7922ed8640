"""nbval runs these notebooks against the local stack in kernels that inherit this process's
environment: give them a throwaway home and no AWS configuration of the developer's."""

import os
import tempfile

_home = tempfile.mkdtemp(prefix="sm-async-nb-notebooks-")
os.environ["SM_ASYNC_NB_HOME"] = os.path.join(_home, ".sm-async-nb")
os.environ["MPLBACKEND"] = "Agg"
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "SM_ASYNC_NB_REAL_ENDPOINT"):
    os.environ.pop(_name, None)
