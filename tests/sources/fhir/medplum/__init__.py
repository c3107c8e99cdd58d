"""A real FHIR engine the project did not write (Medplum's fhir-router, from npm), the
Quebec data set it is loaded with, and the tests' own reading of that data set."""
