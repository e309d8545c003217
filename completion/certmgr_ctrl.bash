# bash completion for certmgr_ctrl. The commands and their options come from
# the tool's own help, so they never drift from it.

_certmgr_ctrl_commands()
{
	"${1:-certmgr_ctrl}" --help 2>/dev/null | awk '/^Commands:/{c=1; next} /^$/{c=0} c && /^  [a-zA-Z]/{print $1}' | sort -u
}

_certmgr_ctrl()
{
	local cur prev cmd i tool=${COMP_WORDS[0]}
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}

	# The command: the first word that is no option nor an option's value.
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
			-h|-p|-u|-P|-o|-W|--cafile|--cert|--key|--store) ((i++)) ;;
			-*) ;;
			*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done

	case $prev in
		--cafile|--cert|--key|-o|--certificate|--pkcs12|--verification-cert)
			COMPREPLY=($(compgen -f -- "$cur")); return ;;
		--store)
			COMPREPLY=($(compgen -d -- "$cur")); return ;;
		--policy)
			COMPREPLY=($(compgen -W "certificate certificate+token token bridge" -- "$cur")); return ;;
		--revocation)
			COMPREPLY=($(compgen -W "when-available required" -- "$cur")); return ;;
		--format)
			COMPREPLY=($(compgen -W "pem der" -- "$cur")); return ;;
		--anchor)
			COMPREPLY=($(compgen -W "root leaf" -- "$cur")); return ;;
		--stale-policy)
			COMPREPLY=($(compgen -W "fail-closed fail-open" -- "$cur")); return ;;
		--key-type)
			COMPREPLY=($(compgen -W "ec rsa ed25519" -- "$cur")); return ;;
		--key-curve)
			COMPREPLY=($(compgen -W "P-256 P-384" -- "$cur")); return ;;
		--filter)
			COMPREPLY=($(compgen -W "connected expiring refused blocked" -- "$cur")); return ;;
		--purpose)
			COMPREPLY=($(compgen -W "devices claim" -- "$cur")); return ;;
		--enroll-mode)
			COMPREPLY=($(compgen -W "auto allowlist approval" -- "$cur")); return ;;
		--reason)
			COMPREPLY=($(compgen -W "unspecified keyCompromise cACompromise affiliationChanged superseded cessationOfOperation certificateHold privilegeWithdrawn aACompromise" -- "$cur")); return ;;
	esac
	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-h -p -u -P -o -W --cafile --cert --key --store --insecure --no-tls --json --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_certmgr_ctrl_commands "$tool") help" -- "$cur"))
		fi
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$("$tool" "$cmd" --help 2>/dev/null | grep -o -- '--[a-z0-9-]*' | sort -u) --help" -- "$cur"))
		return
	fi
	case $cmd in
		*ServerCertificate*|*ServerCertificates|regenerateSelfSigned|createCSR|listCSRs|getCSR|removeCSR|installCertificate)
			# The slot comes first.
			if [ "$prev" = "$cmd" ]; then
				COMPREPLY=($(compgen -W "mqtt websockets bridge" -- "$cur"))
				return
			fi ;;
	esac
	COMPREPLY=($(compgen -f -- "$cur"))
}

complete -o filenames -F _certmgr_ctrl certmgr_ctrl
