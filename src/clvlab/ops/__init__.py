"""Operations: MLflow tracking, the served model, the batch scoring job, experiments, the demo
and the Spark jobs. Above every other layer but the command line."""
