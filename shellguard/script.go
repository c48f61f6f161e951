package shellguard

import (
	"fmt"
	"strings"
)

// Shells that Script knows.
var Shells = []string{"bash", "zsh", "fish"}

// GuardCommand is the hidden subcommand the shell function asks before a command that may
// delete volumes: it prints the arguments to run, quoted for the shell, or fails.
const GuardCommand = "shell-guard"

// The functions only ask the guard when a word that can delete volumes is on the line, so
// every other command runs without starting the plugin; sudo's also needs docker or
// docker-compose among its words. `docker echo-backup` (the name in the original design; the
// CLI rejects it as a plugin name) runs `docker echobackup`. The guard prints the words to run
// (the line without the guard's own --force), quoted for the shell.
const posixScript = `# docker echobackup shell-init %[1]s: a verified backup before docker, docker-compose or
# sudo docker deletes an Echo project's volumes. Load it with: eval "$(docker echobackup shell-init %[1]s)"
docker() {
  if [ "$1" = echo-backup ]; then
    shift
    set -- echobackup "$@"
  fi
  case " $* " in
    *" down "*|*" rm "*|*" remove "*|*" prune "*)
      local __echobackup_args
      __echobackup_args=$(command docker echobackup ` + GuardCommand + ` --shell %[1]s -- "$@") || return
      eval "set -- $__echobackup_args"
      ;;
  esac
  command docker "$@"
}
docker-compose() {
  case " $* " in
    *" down "*|*" rm "*)
      local __echobackup_args
      __echobackup_args=$(command docker echobackup ` + GuardCommand + ` --shell %[1]s --program docker-compose -- "$@") || return
      eval "set -- $__echobackup_args"
      ;;
  esac
  command docker-compose "$@"
}
sudo() {
  case " $* " in
    *" docker "*|*" docker-compose "*)
      case " $* " in
        *" down "*|*" rm "*|*" remove "*|*" prune "*)
          local __echobackup_args
          __echobackup_args=$(command docker echobackup ` + GuardCommand + ` --shell %[1]s --program sudo -- "$@") || return
          eval "set -- $__echobackup_args"
          ;;
      esac
      ;;
  esac
  command sudo "$@"
}
`

const fishScript = `# docker echobackup shell-init fish: a verified backup before docker, docker-compose or
# sudo docker deletes an Echo project's volumes. Load it with: docker echobackup shell-init fish | source
function docker --description 'docker, with a verified backup before Echo volumes are deleted'
    set -l args $argv
    if test "$args[1]" = echo-backup
        set args[1] echobackup
    end
    if contains -- down $args; or contains -- rm $args; or contains -- remove $args; or contains -- prune $args
        set -l guarded (command docker echobackup ` + GuardCommand + ` --shell fish -- $args)
        or return $status
        eval set args $guarded
    end
    command docker $args
end
function docker-compose --description 'docker-compose, with a verified backup before Echo volumes are deleted'
    set -l args $argv
    if contains -- down $args; or contains -- rm $args
        set -l guarded (command docker echobackup ` + GuardCommand + ` --shell fish --program docker-compose -- $args)
        or return $status
        eval set args $guarded
    end
    command docker-compose $args
end
function sudo --description 'sudo, with a verified backup before docker deletes Echo volumes'
    set -l args $argv
    if contains -- docker $args; or contains -- docker-compose $args
        if contains -- down $args; or contains -- rm $args; or contains -- remove $args; or contains -- prune $args
            set -l guarded (command docker echobackup ` + GuardCommand + ` --shell fish --program sudo -- $args)
            or return $status
            eval set args $guarded
        end
    end
    command sudo $args
end
`

// Script is the shell function for shell.
func Script(shell string) (string, error) {
	switch shell {
	case "bash", "zsh":
		return fmt.Sprintf(posixScript, shell), nil
	case "fish":
		return fishScript, nil
	}
	return "", fmt.Errorf("unknown shell %q: use one of %s", shell, strings.Join(Shells, ", "))
}

// Quote joins args into one line that the shell's eval turns back into the same words.
//
// Every word is quoted, even a plain one: schedule.ShellQuote leaves a leading "=" bare,
// and zsh expands that (its EQUALS option). For fish the line must also hold no newline:
// the function reads it with a command substitution, which splits on newlines, and eval
// would join the pieces with spaces. A newline goes outside the quotes as fish's \n escape.
func Quote(shell string, args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if shell == "fish" {
			// In fish's single quotes only \\ and \' are escapes.
			a = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `'\n'`).Replace(a)
		} else {
			a = strings.ReplaceAll(a, "'", `'\''`)
		}
		quoted[i] = "'" + a + "'"
	}
	return strings.Join(quoted, " ")
}
