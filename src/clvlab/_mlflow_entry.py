"""The code file of clvlab's MLflow model (models from code): the model class comes from the
installed clvlab, so the logged file holds no logic of its own."""

import mlflow

from clvlab.serving import CLVModel

mlflow.models.set_model(CLVModel())
