variable "endpoint" {
  description = "The AWS emulator every service is pointed at."
  type        = string
}

variable "cloudwatch_endpoint" {
  description = "CloudWatch's endpoint when it is not `endpoint` (a shim or a proxy in front of it)."
  type        = string
  default     = ""
}

variable "code_zip" {
  description = "The API function's zip: the same bytes ferroform's `Code::binary` packages, so the code matches."
  type        = string
}

variable "stage_tags" {
  description = "Tags the API's stage is made with. moto 5.2.5 cannot tag a stage once it exists (TagResource answers 404), so the takeover test has Terraform make it with the tags ferroform would add; empty elsewhere."
  type        = map(string)
  default     = {}
}
