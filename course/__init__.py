"""The course model: a course file, its roster, the names and catalog every layer derives from.

Pure data and checks: no boto3, no CDK, no file other than the course file and its roster is read.
Every other package may import it; it imports none of them.
"""
