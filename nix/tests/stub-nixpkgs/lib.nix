# A small stand-in for nixpkgs' lib: the functions the flake uses, with the same semantics for
# the cases the flake exercises. Only for evaluating flake.nix offline (nix/tests/eval-flake.nix).
let
  lib = rec {
    inherit (builtins)
      attrNames
      attrValues
      concatStringsSep
      elem
      filter
      hasAttr
      head
      isAttrs
      isFunction
      isList
      isString
      length
      listToAttrs
      map
      mapAttrs
      removeAttrs
      ;

    id = x: x;
    optionals = cond: xs: if cond then xs else [ ];
    optionalString = cond: s: if cond then s else "";
    genAttrs = names: f: listToAttrs (map (n: { name = n; value = f n; }) names);
    filterAttrs =
      pred: set:
      listToAttrs (
        builtins.concatMap (n: if pred n set.${n} then [ { name = n; value = set.${n}; } ] else [ ]) (
          attrNames set
        )
      );
    importJSON = path: builtins.fromJSON (builtins.readFile path);
    importTOML = path: builtins.fromTOML (builtins.readFile path);
    assertMsg = pred: msg: pred || builtins.throw msg;
    escapeShellArg = arg: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";

    getName = drv: drv.pname or (builtins.parseDrvName drv.name).name;
    getExe =
      drv:
      if drv ? meta.mainProgram then
        "${drv}/bin/${drv.meta.mainProgram}"
      else
        builtins.throw "getExe: ${drv.name} has no meta.mainProgram";
    getExe' = drv: program: "${drv}/bin/${program}";
    makeBinPath = pkgs: concatStringsSep ":" (map (p: "${p}/bin") pkgs);

    # fix-point extensions (overlays)
    fix = f: let x = f x; in x;
    extends = overlay: f: final: let prev = f final; in prev // overlay final prev;
    composeExtensions =
      f: g: final: prev:
      let
        fApplied = f final prev;
        prev' = prev // fApplied;
      in
      fApplied // g final prev';
    composeManyExtensions = builtins.foldl' composeExtensions (final: prev: { });

    # A scope with overrideScope, like lib.makeScope.
    makeScope =
      f:
      let
        self = f self // {
          overrideScope = g: makeScope (extends g f);
        };
      in
      self;

    # The path checks of nixpkgs' lib.fileset (lib/fileset/default.nix): `root` and every
    # element must be paths (not strings, not store-path strings), must exist, and every
    # element must lie under `root`.
    fileset =
      let
        coerce =
          context: value:
          if builtins.isAttrs value && value ? _fileset then
            value._fileset
          else if builtins.isString value || (builtins.isAttrs value && value ? outPath) then
            builtins.throw "lib.fileset.${context}: ${toString value} is a string-like value, but it should be a path instead"
          else if !builtins.isPath value then
            builtins.throw "lib.fileset.${context}: an element is of type ${builtins.typeOf value}, but it should be a path instead"
          else if !builtins.pathExists value then
            builtins.throw "lib.fileset.${context}: ${toString value} is a path that does not exist"
          else
            [ value ];
        isUnder =
          root: path:
          let
            r = toString root;
            p = toString path;
          in
          p == r || builtins.substring 0 (builtins.stringLength r + 1) p == r + "/";
      in
      {
        unions = paths: { _fileset = builtins.concatMap (coerce "unions") paths; };
        toSource =
          { root, fileset }:
          let
            paths = coerce "toSource" fileset;
            rootChecked =
              if builtins.isString root || (builtins.isAttrs root && root ? outPath) then
                builtins.throw "lib.fileset.toSource: `root` (${toString root}) is a string-like value, but it should be a path instead"
              else if !builtins.isPath root then
                builtins.throw "lib.fileset.toSource: `root` is of type ${builtins.typeOf root}, but it should be a path instead"
              else if !builtins.pathExists root then
                builtins.throw "lib.fileset.toSource: `root` (${toString root}) is a path that does not exist"
              else
                root;
            check = map (
              p:
              if isUnder rootChecked p then
                p
              else
                builtins.throw "lib.fileset.toSource: `fileset` could contain files in ${toString p}, which is not under the `root` (${toString root})"
            ) paths;
          in
          builtins.deepSeq check rootChecked;
      };

    licenses = {
      asl20 = {
        shortName = "asl20";
        free = true;
      };
      unfree = {
        shortName = "unfree";
        free = false;
      };
    };
    sourceTypes = {
      binaryBytecode = "binaryBytecode";
      binaryNativeCode = "binaryNativeCode";
      fromSource = "fromSource";
    };
  };
in
lib
