"""MLflow as a tracker (client.py): experiments' runs read and written through `mlflow.MlflowClient`, which is
imported only here, and lazily (`pip install 'runsync[mlflow]'`)."""
