"""Write the .pth hook that applies vee_tasks.airflow_defaults in this environment."""

import sysconfig
from pathlib import Path

target = Path(sysconfig.get_paths()["purelib"]) / "vee_airflow_defaults.pth"
target.write_text("import vee_tasks.airflow_defaults\n")
print(f"wrote {target}")
