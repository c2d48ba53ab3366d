# Smoke tests for the SDK: it compiles and links both kinds of artefact the project builds.
{ runCommand, mojo-sdk }:

let
  program = ''
    def main():
        var total = 0
        for i in range(10):
            total += i
        print("sum", total)
  '';
  extension = ''
    from std.os import abort
    from std.python import PythonObject
    from std.python.bindings import PythonModuleBuilder

    @export
    def PyInit_smoke() abi("C") -> PythonObject:
        try:
            var m = PythonModuleBuilder("smoke")
            return m.finalize()
        except e:
            abort(String("failed to create module: ", e))
  '';
in
{
  executable =
    runCommand "mojo-sdk-test-executable"
      {
        nativeBuildInputs = [ mojo-sdk ];
        inherit program;
        passAsFile = [ "program" ];
      }
      ''
        export HOME=$TMPDIR
        cp "$programPath" main.mojo
        mojo build main.mojo -o main
        ./main | tee $out
        grep -qx "sum 45" $out
      '';

  shared-lib =
    runCommand "mojo-sdk-test-shared-lib"
      {
        nativeBuildInputs = [ mojo-sdk ];
        inherit extension;
        passAsFile = [ "extension" ];
      }
      ''
        export HOME=$TMPDIR
        cp "$extensionPath" smoke.mojo
        mojo build smoke.mojo --emit shared-lib -o smoke.so
        test -s smoke.so
        touch $out
      '';
}
