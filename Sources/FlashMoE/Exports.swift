// One import gives a user the whole public surface: shapes and dtypes (MoECore), file formats
// (MoEFiles) and the layer (this module).
@_exported import MoECore
@_exported import MoEFiles
@_exported import MoECUDA
@_exported import MoECPU
